-- start_tasks: a concurrent worker's slots' starts that met, in one script run: each call is
-- start_task's step, fenced by its own token (a stale one is refused in its own answer while
-- the others start). Bounded by the batch (a worker's slots), never by the size of a run.
-- ARGV[1]  worker       worker name
-- ARGV[2]  maxlen       approximate maximum length of the events streams
-- Then per call c (c = 0, 1, ...): CALL_KEYS keys from key 1 + CALL_KEYS * c on, in this order:
--   meta_key, results_key, dispatch_key, events_key (the run's, as in start_task);
-- and its arguments from where the previous call's end (the first from argument 3 on):
--   task, token, worker_time, heartbeat_timeout, claim (as in start_task), dependency_count,
--   then the names of that many dependencies.
-- Returns: one answer per call, in order, each what start_task answers: {'gone'}, {'done'},
--          {'stale'}, {'cancelled', reason} or {'ok', params_json, dep_result_json_or_nil, ...}
--          (also for a replay of the call that started it: nothing is written again).
local worker = ARGV[1]
local maxlen = ARGV[2]
local CALL_KEYS = 4
local keys = KEYS
local args = ARGV

local function answer(meta_key, results_key, a, deps)
  local out = {'ok', redis.call('HGET', meta_key, 'params') or '{}'}
  for i = 1, deps do
    out[#out + 1] = redis.call('HGET', results_key, args[a + 6 + i])
  end
  return out
end

-- start_task's step for one call whose keys follow k and arguments follow a
local function start(k, a, deps)
  local meta_key, results_key, dispatch_key, events_key = keys[k + 1], keys[k + 2], keys[k + 3], keys[k + 4]
  local task, token, worker_time = args[a + 1], args[a + 2], args[a + 3]
  local heartbeat_timeout, claim = args[a + 4], args[a + 5]
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
    return answer(meta_key, results_key, a, deps)  -- this very start, sent again
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
  return answer(meta_key, results_key, a, deps)
end

local out = {}
local a = 2
for c = 0, #keys / CALL_KEYS - 1 do
  local deps = tonumber(args[a + 6])
  out[#out + 1] = start(CALL_KEYS * c, a, deps)
  a = a + 6 + deps
end
return out
