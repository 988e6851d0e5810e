-- start_task: a worker claims one attempt and gets its inputs in the same round trip.
-- KEYS[1]  meta_key           run meta hash
-- KEYS[2]  results_key        run results hash (task -> TaskResult JSON)
-- KEYS[3]  dispatch_key       run dispatch hash (task -> dispatch entry JSON)
-- KEYS[4]  events_key         run events stream
-- ARGV[1]  task               task name
-- ARGV[2]  token              token of the attempt the job carries
-- ARGV[3]  worker             worker name
-- ARGV[4]  worker_time        the worker's clock (unix seconds; kept as worker_time,
--                             heartbeats use Redis TIME)
-- ARGV[5]  maxlen             approximate maximum length of the events stream
-- ARGV[6]  heartbeat_timeout  this worker's own heartbeat limit in seconds, or ''
--                             (the run's limit applies)
-- ARGV[7]  claim              unique to this start: the same call sent again (its answer
--                             was lost) finds its own claim and answers 'ok' again
-- ARGV[8..] names of the task's dependencies
-- Returns: {'gone'} the run does not exist; {'done'} the task already succeeded;
--          {'stale'} the token is not the current queued attempt;
--          {'cancelled', reason} the run is being cancelled;
--          {'ok', params_json, dep_result_json_or_nil, ...} the attempt is now running (also
--          for a replay of the call that started it: nothing is written again).
local meta_key = KEYS[1]
local results_key = KEYS[2]
local dispatch_key = KEYS[3]
local events_key = KEYS[4]
local task = ARGV[1]
local token = ARGV[2]
local worker = ARGV[3]
local worker_time = ARGV[4]
local maxlen = ARGV[5]
local heartbeat_timeout = ARGV[6]
local claim = ARGV[7]
local first_dependency = 8

local function answer()
  local out = {'ok', redis.call('HGET', meta_key, 'params') or '{}'}
  for i = first_dependency, #ARGV do
    out[#out + 1] = redis.call('HGET', results_key, ARGV[i])
  end
  return out
end

if redis.call('EXISTS', meta_key) == 0 then
  return {'gone'}
end
local existing = redis.call('HGET', results_key, task)
if existing then
  local ok, decoded = pcall(cjson.decode, existing)
  if ok and type(decoded) == 'table' and decoded['status'] == 'success' then
    return {'done'}
  end
end
local raw = redis.call('HGET', dispatch_key, task)
if not raw then
  return {'stale'}
end
local ok, entry = pcall(cjson.decode, raw)
if not ok or type(entry) ~= 'table' or entry['token'] ~= token then
  return {'stale'}
end
if entry['state'] == 'running' and entry['claim'] == claim then
  return answer()  -- this very start, sent again
end
if entry['state'] ~= 'queued' then
  return {'stale'}
end
local cancel = redis.call('HGET', meta_key, 'cancel')
if cancel and cancel ~= '' then
  return {'cancelled', cancel}
end
local now = redis.call('TIME')
entry['state'] = 'running'
entry['worker'] = worker
entry['worker_time'] = tonumber(worker_time)
entry['started_at'] = tonumber(now[1]) + tonumber(now[2]) / 1000000
entry['heartbeat_at'] = entry['started_at']
entry['claim'] = claim
if heartbeat_timeout ~= '' then
  entry['heartbeat_timeout'] = tonumber(heartbeat_timeout)
end
redis.call('HSET', dispatch_key, task, cjson.encode(entry))
redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, '*',
  'kind', 'started', 'task', task, 'token', token, 'worker', worker)
return answer()
