-- void_attempt: the coordinator declares an attempt lost, under its lease: a running
-- one whose heartbeat went silent (a late finish from that worker is then refused),
-- or a queued one whose job left the queue but never started (its worker died
-- between RQ's dequeue and rqdag's start step: a late start is then refused).
-- KEYS[1]  run lease key
-- KEYS[2]  run dispatch hash
-- KEYS[3]  run events stream
-- ARGV[1]  lease value "owner|fence" the caller holds
-- ARGV[2]  task name
-- ARGV[3]  token of the attempt
-- ARGV[4]  approximate maximum length of the events stream
-- ARGV[5]  the state the attempt must still be in: 'running' or 'queued'
-- Returns: 1 when the attempt is now void; 0 when it is no longer in that state
--          (it started or finished meanwhile); -1 when the lease is not held.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local raw = redis.call('HGET', KEYS[2], ARGV[2])
if not raw then
  return 0
end
local ok, entry = pcall(cjson.decode, raw)
if not ok or type(entry) ~= 'table' or entry['token'] ~= ARGV[3] or entry['state'] ~= ARGV[5] then
  return 0
end
-- 'vanished' (never started) is sent again as is; 'lost' counts as a failed attempt
if ARGV[5] == 'queued' then
  entry['state'] = 'vanished'
else
  entry['state'] = 'lost'
end
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(entry))
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*',
  'kind', entry['state'], 'task', ARGV[2], 'token', ARGV[3], 'worker', tostring(entry['worker']))
return 1
