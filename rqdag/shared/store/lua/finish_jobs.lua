-- finish_jobs: a concurrent worker reports the outcomes of a batch of attempts (its slots'
-- finishes that met), each fenced by its own token as finish_task is, and for each attempt
-- written now with rq = '1', RQ's success bookkeeping of its job in the same script (what
-- RQ's own success path writes: the job hash, the result stream, the finished registry,
-- the execution record out of the started registry, the worker's counters).
-- Bounded by the batch (a worker's slots), never by the size of a run.
-- KEYS[1]  worker_key             RQ's hash of the worker
-- KEYS[2]  worker_executions_key  RQ's set of the worker's executions
-- ARGV[1]  maxlen                 approximate maximum length of the events streams
-- ARGV[2]  worker                 worker name
-- ARGV[3]  rq_finished            RQ's word for a finished job (its JobStatus)
-- ARGV[4]  rq_successful          RQ's word for a successful result (its Result.Type)
-- Then per call c (c = 0, 1, ...): CALL_KEYS keys from key 3 + CALL_KEYS * c on, and CALL_ARGS
-- arguments from argument 5 + CALL_ARGS * c on, in this order:
--   keys: results_key, dispatch_key, events_key (the run's, as in finish_task), then RQ's
--         job_key, job_results_key, finished_key, started_key, execution_key,
--         job_executions_key, dependents_key, dependencies_key (unused when rq is '0':
--         the run's results key stands in for each)
--   args: task, token, result, status, final, now, inline (as in finish_task), rq ('1': do
--         RQ's success bookkeeping when written now), job_id, execution_id, execution_member
--         (its member in the started registry), started_at, ended_at (RQ's text form),
--         working_time (seconds), return_value (RQ's encoded form), execution_started_at,
--         execution_ended_at (unix seconds), result_ttl (seconds, > 0), finished_score
-- Returns: one word per call, in order: 'ok' when written (or written by this same call
--          before, sent again after its answer was lost: nothing is written again, RQ's part
--          neither), 'stale' when the token is no longer current (nothing written but a
--          'refused' event, unless the run is gone; RQ's part is left to the caller).
local worker_key = KEYS[1]
local worker_executions_key = KEYS[2]
local maxlen = ARGV[1]
local worker = ARGV[2]
local rq_finished = ARGV[3]
local rq_successful = ARGV[4]
local CALL_KEYS = 11
local CALL_ARGS = 19
local keys = KEYS
local args = ARGV

-- Tell the run's driver loop that the run has news: the loop's inbox stream is named in the
-- run's meta (field 'inbox', set with its lease), so it reads only the runs with news. A key
-- not declared (standalone Redis only, as the loop's reads are); its prefix and MAXLEN are
-- keys.INBOX_PREFIX and keys.INBOX_MAXLEN (a test holds them equal).
local notified = {}  -- the runs told of this batch
local function notify_driver(events_key)
  if notified[events_key] then
    return
  end
  notified[events_key] = true
  local inbox = redis.call('HGET', string.sub(events_key, 1, -7) .. 'meta', 'inbox')
  if inbox and string.sub(inbox, 1, 18) == 'rqdag:coordinator:' and redis.call('EXISTS', inbox) == 1 then
    redis.call('XADD', inbox, 'MAXLEN', '~', 100000, '*', 'e', events_key)
  end
end

local function decoded_entry(dispatch_key, task)
  local raw = redis.call('HGET', dispatch_key, task)
  if raw then
    local ok, decoded = pcall(cjson.decode, raw)
    if ok and type(decoded) == 'table' then
      return decoded
    end
  end
  return nil
end

local function written_before(results_key, entry, task, token, result, final)
  if final == '1' then
    return redis.call('HGET', results_key, task) == result
  end
  if entry == nil then
    return false
  end
  if entry['token'] == token then
    return entry['state'] == 'retry_wait' and entry['last_result'] == result
  end
  return entry['retry_of'] == token
end

-- rqdag's fenced finish of one attempt: 'ok' or 'stale', and whether it wrote now
local function finish(k, a)
  local results_key, dispatch_key, events_key = keys[k + 1], keys[k + 2], keys[k + 3]
  local task, token, result, status = args[a + 1], args[a + 2], args[a + 3], args[a + 4]
  local final, now, inline = args[a + 5], args[a + 6], args[a + 7]
  local entry = decoded_entry(dispatch_key, task)
  if entry == nil or entry['token'] ~= token or entry['state'] ~= 'running' then
    if written_before(results_key, entry, task, token, result, final) then
      return 'ok', false
    end
    if redis.call('EXISTS', events_key) == 1 then
      redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, '*',
        'kind', 'refused', 'task', task, 'token', token, 'status', status)
    end
    return 'stale', false
  end
  local kind = 'finished'
  if final == '1' then
    redis.call('HSET', results_key, task, result)
    redis.call('HDEL', dispatch_key, task)
  else
    kind = 'retry'
    entry['state'] = 'retry_wait'
    entry['last_result'] = result
    entry['finished_at'] = tonumber(now)
    redis.call('HSET', dispatch_key, task, cjson.encode(entry))
  end
  local fields = { 'kind', kind, 'task', task, 'token', token, 'status', status }
  if inline == '1' then
    fields[#fields + 1] = 'result'
    fields[#fields + 1] = result
  end
  redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, '*', unpack(fields))
  notify_driver(events_key)
  return 'ok', true
end

-- RQ's bookkeeping of one job that succeeded (RQ's Job._handle_success and cleanup_execution)
local function rq_success(k, a)
  local job_key, job_results_key, finished_key = keys[k + 4], keys[k + 5], keys[k + 6]
  local started_key, execution_key, job_executions_key = keys[k + 7], keys[k + 8], keys[k + 9]
  local dependents_key, dependencies_key = keys[k + 10], keys[k + 11]
  local job_id, execution_id, execution_member = args[a + 9], args[a + 10], args[a + 11]
  local started_at, ended_at, working_time = args[a + 12], args[a + 13], args[a + 14]
  local return_value = args[a + 15]
  local execution_started_at, execution_ended_at = args[a + 16], args[a + 17]
  local result_ttl, finished_score = args[a + 18], args[a + 19]
  redis.call('HINCRBY', worker_key, 'successful_job_count', 1)
  redis.call('HINCRBYFLOAT', worker_key, 'total_working_time', working_time)
  redis.call('HSET', job_key, 'status', rq_finished, 'ended_at', ended_at, 'started_at', started_at,
    'last_heartbeat', ended_at)
  redis.call('XADD', job_results_key, 'MAXLEN', '~', 10, '*', 'type', rq_successful,
    'worker_name', worker, 'return_value', return_value, 'execution_id', execution_id,
    'execution_started_at', execution_started_at, 'execution_ended_at', execution_ended_at)
  redis.call('EXPIRE', job_results_key, result_ttl)
  redis.call('ZADD', finished_key, finished_score, job_id)
  redis.call('EXPIRE', job_key, result_ttl)
  redis.call('EXPIRE', dependents_key, result_ttl)
  redis.call('EXPIRE', dependencies_key, result_ttl)
  redis.call('DEL', execution_key)
  redis.call('ZREM', started_key, execution_member)
  redis.call('ZREM', job_executions_key, execution_id)
  redis.call('SREM', worker_executions_key, execution_member)
end

local out = {}
local calls = (#keys - 2) / CALL_KEYS
for c = 0, calls - 1 do
  local k = 2 + CALL_KEYS * c
  local a = 4 + CALL_ARGS * c
  local word, wrote = finish(k, a)
  if wrote and args[a + 8] == '1' then
    rq_success(k, a)
  end
  out[#out + 1] = word
end
return out
