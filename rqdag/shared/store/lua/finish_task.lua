-- finish_task: a worker reports the outcome of one attempt, fenced by its token.
-- KEYS[1]  results_key   run results hash
-- KEYS[2]  dispatch_key  run dispatch hash
-- KEYS[3]  events_key    run events stream
-- ARGV[1]  task          task name
-- ARGV[2]  token         token of the attempt
-- ARGV[3]  result        TaskResult JSON
-- ARGV[4]  status        status of that result (for the event)
-- ARGV[5]  final         '1' final result (write it to results); '0' a retry follows
--                        (keep it in dispatch)
-- ARGV[6]  now           now (unix seconds)
-- ARGV[7]  maxlen        approximate maximum length of the events stream
-- ARGV[8]  inline        '1' to copy the result into the event too (a small one: the
--                        coordinator then needs no read of its own); '0' the coordinator
--                        reads it from the hash
-- Returns: 'ok' when written, or when this same call was written already (sent again after
--          its answer was lost: the result is in results, or kept in the entry, or the
--          entry is the retry of this attempt); 'stale' when the token is no longer current
--          (nothing written but a 'refused' event, so the late answer is logged, unless the
--          run is gone).
local results_key = KEYS[1]
local dispatch_key = KEYS[2]
local events_key = KEYS[3]
local task = ARGV[1]
local token = ARGV[2]
local result = ARGV[3]
local status = ARGV[4]
local final = ARGV[5]
local now = ARGV[6]
local maxlen = ARGV[7]
local inline = ARGV[8]

-- Tell the run's driver loop that the run has news: the loop's inbox stream is named in the
-- run's meta (field 'inbox', set with its lease), so it reads only the runs with news. A key
-- not declared (standalone Redis only, as the loop's reads are); its prefix and MAXLEN are
-- keys.INBOX_PREFIX and keys.INBOX_MAXLEN (a test holds them equal).
local function notify_driver(events_key)
  local inbox = redis.call('HGET', string.sub(events_key, 1, -7) .. 'meta', 'inbox')
  if inbox and string.sub(inbox, 1, 18) == 'rqdag:coordinator:' and redis.call('EXISTS', inbox) == 1 then
    redis.call('XADD', inbox, 'MAXLEN', '~', 100000, '*', 'e', events_key)
  end
end

local raw = redis.call('HGET', dispatch_key, task)
local entry = nil
if raw then
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and type(decoded) == 'table' then
    entry = decoded
  end
end
local function written_before()
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

if entry == nil or entry['token'] ~= token or entry['state'] ~= 'running' then
  if written_before() then
    return 'ok'
  end
  -- no events stream: the run expired or was pruned; a new stream would outlive it
  if redis.call('EXISTS', events_key) == 1 then
    redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, '*',
      'kind', 'refused', 'task', task, 'token', token, 'status', status)
  end
  return 'stale'
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
return 'ok'
