-- heartbeat: a worker proves a running attempt is alive, and learns of a cancel.
-- KEYS[1]  run dispatch hash
-- KEYS[2]  run meta hash
-- ARGV[1]  task name
-- ARGV[2]  token of the attempt
-- ARGV[3]  the worker's clock (unix seconds; informational: heartbeat_at is Redis TIME,
--          so hosts with skewed clocks agree on what is stale)
-- Returns: {'ok', cancel_reason_or_empty} when recorded; {'stale'} when the attempt
--          is no longer current (the worker should stop it).
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  return {'stale'}
end
local ok, entry = pcall(cjson.decode, raw)
if not ok or type(entry) ~= 'table' or entry['token'] ~= ARGV[2] or entry['state'] ~= 'running' then
  return {'stale'}
end
local now = redis.call('TIME')
entry['heartbeat_at'] = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
return {'ok', redis.call('HGET', KEYS[2], 'cancel') or ''}
