-- void_attempt: the coordinator declares an attempt lost, under its lease: a running
-- one whose heartbeat went silent (a late finish from that worker is then refused),
-- or a queued one whose job left the queue but never started (its worker died
-- between RQ's dequeue and rqdag's start step: a late start is then refused).
-- KEYS[1]  lease_key     run lease key
-- KEYS[2]  dispatch_key  run dispatch hash
-- KEYS[3]  events_key    run events stream
-- ARGV[1]  lease         lease value "owner|fence" the caller holds
-- ARGV[2]  task          task name
-- ARGV[3]  token         token of the attempt
-- ARGV[4]  maxlen        approximate maximum length of the events stream
-- ARGV[5]  state         the state the attempt must still be in: 'running' or 'queued'
-- Returns: 1 when the attempt is now void; 0 when it is no longer in that state
--          (it started or finished meanwhile); -1 when the lease is not held.
local lease_key = KEYS[1]
local dispatch_key = KEYS[2]
local events_key = KEYS[3]
local lease = ARGV[1]
local task = ARGV[2]
local token = ARGV[3]
local maxlen = ARGV[4]
local state = ARGV[5]

if redis.call('GET', lease_key) ~= lease then
  return -1
end
local raw = redis.call('HGET', dispatch_key, task)
if not raw then
  return 0
end
local ok, entry = pcall(cjson.decode, raw)
if not ok or type(entry) ~= 'table' or entry['token'] ~= token or entry['state'] ~= state then
  return 0
end
-- 'vanished' (never started) is sent again as is; 'lost' counts as a failed attempt
if state == 'queued' then
  entry['state'] = 'vanished'
else
  entry['state'] = 'lost'
end
redis.call('HSET', dispatch_key, task, cjson.encode(entry))
redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, '*',
  'kind', entry['state'], 'task', task, 'token', token, 'worker', tostring(entry['worker']))
return 1
