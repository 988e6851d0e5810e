-- void_attempt: the coordinator declares a running attempt lost (its heartbeat went
-- silent), under its lease, so that a late finish from that worker is refused.
-- KEYS[1]  run lease key
-- KEYS[2]  run dispatch hash
-- KEYS[3]  run events stream
-- ARGV[1]  lease value "owner|fence" the caller holds
-- ARGV[2]  task name
-- ARGV[3]  token of the attempt
-- ARGV[4]  approximate maximum length of the events stream
-- Returns: 1 when the attempt is now void; 0 when it is no longer the running attempt
--          (it finished meanwhile); -1 when the lease is not held (nothing written).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local raw = redis.call('HGET', KEYS[2], ARGV[2])
if not raw then
  return 0
end
local ok, entry = pcall(cjson.decode, raw)
if not ok or type(entry) ~= 'table' or entry['token'] ~= ARGV[3] or entry['state'] ~= 'running' then
  return 0
end
entry['state'] = 'lost'
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(entry))
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*',
  'kind', 'lost', 'task', ARGV[2], 'token', ARGV[3], 'worker', tostring(entry['worker']))
return 1
