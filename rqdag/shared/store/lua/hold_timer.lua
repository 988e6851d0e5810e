-- hold_timer: the coordinator starts the timer of a wait (its deadline) or a sleep (its
-- wake-up), under its lease, measured by Redis TIME. Idempotent: a timer stored already
-- (a coordinator restarted mid-sleep) is kept, never started over.
-- KEYS[1]  lease_key   run lease key
-- KEYS[2]  timers_key  run timers hash (epoch:task -> unix time the timer fires)
-- ARGV[1]  lease       lease value "owner|fence" the caller holds
-- ARGV[2]  field       the timer's field: "<epoch>:<task>"
-- ARGV[3]  seconds     how long from now the timer fires, if it is not stored yet
-- Returns: {fires_at, redis_now} as strings (unix seconds), or -1 when the lease is
--          not held (nothing written).
local lease_key = KEYS[1]
local timers_key = KEYS[2]
local lease = ARGV[1]
local field = ARGV[2]
local seconds = ARGV[3]

if redis.call('GET', lease_key) ~= lease then
  return -1
end
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local fires_at = redis.call('HGET', timers_key, field)
if not fires_at then
  fires_at = tostring(now + tonumber(seconds))
  redis.call('HSET', timers_key, field, fires_at)
end
return {fires_at, tostring(now)}
