-- hand_back: a worker that is shutting down gives a running attempt back, so the
-- coordinator dispatches it again at once (or, for an at-most-once task, marks its
-- outcome unknown) instead of waiting for the heartbeat limit.
-- KEYS[1]  run dispatch hash
-- KEYS[2]  run events stream
-- ARGV[1]  task name
-- ARGV[2]  token of the attempt
-- ARGV[3]  approximate maximum length of the events stream
-- Returns: 1 when handed back; 0 when the attempt is no longer the running one.
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  return 0
end
local ok, entry = pcall(cjson.decode, raw)
if not ok or type(entry) ~= 'table' or entry['token'] ~= ARGV[2] or entry['state'] ~= 'running' then
  return 0
end
entry['state'] = 'handed_back'
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
  'kind', 'handback', 'task', ARGV[1], 'token', ARGV[2], 'worker', tostring(entry['worker']))
return 1
