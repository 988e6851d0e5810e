-- start_task: a worker claims one attempt and gets its inputs in the same round trip.
-- KEYS[1]  run meta hash
-- KEYS[2]  run results hash (task -> TaskResult JSON)
-- KEYS[3]  run dispatch hash (task -> dispatch entry JSON)
-- KEYS[4]  run events stream
-- ARGV[1]  task name
-- ARGV[2]  token of the attempt the job carries
-- ARGV[3]  worker name
-- ARGV[4]  the worker's clock (unix seconds; kept as worker_time, heartbeats use Redis TIME)
-- ARGV[5]  approximate maximum length of the events stream
-- ARGV[6]  this worker's own heartbeat limit in seconds, or '' (the run's limit applies)
-- ARGV[7..] names of the task's dependencies
-- Returns: {'gone'} the run does not exist; {'done'} the task already succeeded;
--          {'stale'} the token is not the current queued attempt;
--          {'cancelled', reason} the run is being cancelled;
--          {'ok', params_json, dep_result_json_or_nil, ...} the attempt is now running.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'gone'}
end
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then
  local ok, decoded = pcall(cjson.decode, existing)
  if ok and type(decoded) == 'table' and decoded['status'] == 'success' then
    return {'done'}
  end
end
local raw = redis.call('HGET', KEYS[3], ARGV[1])
if not raw then
  return {'stale'}
end
local ok, entry = pcall(cjson.decode, raw)
if not ok or type(entry) ~= 'table' or entry['token'] ~= ARGV[2] or entry['state'] ~= 'queued' then
  return {'stale'}
end
local cancel = redis.call('HGET', KEYS[1], 'cancel')
if cancel and cancel ~= '' then
  return {'cancelled', cancel}
end
local now = redis.call('TIME')
entry['state'] = 'running'
entry['worker'] = ARGV[3]
entry['worker_time'] = tonumber(ARGV[4])
entry['started_at'] = tonumber(now[1]) + tonumber(now[2]) / 1000000
entry['heartbeat_at'] = entry['started_at']
if ARGV[6] ~= '' then
  entry['heartbeat_timeout'] = tonumber(ARGV[6])
end
redis.call('HSET', KEYS[3], ARGV[1], cjson.encode(entry))
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*',
  'kind', 'started', 'task', ARGV[1], 'token', ARGV[2], 'worker', ARGV[3])
local out = {'ok', redis.call('HGET', KEYS[1], 'params') or '{}'}
for i = 7, #ARGV do
  out[#out + 1] = redis.call('HGET', KEYS[2], ARGV[i])
end
return out
