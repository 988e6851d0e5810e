-- finish_task: a worker reports the outcome of one attempt, fenced by its token.
-- KEYS[1]  run results hash
-- KEYS[2]  run dispatch hash
-- KEYS[3]  run events stream
-- ARGV[1]  task name
-- ARGV[2]  token of the attempt
-- ARGV[3]  TaskResult JSON
-- ARGV[4]  status of that result (for the event)
-- ARGV[5]  '1' final result (write it to results); '0' a retry follows (keep it in dispatch)
-- ARGV[6]  now (unix seconds)
-- ARGV[7]  approximate maximum length of the events stream
-- ARGV[8]  '1' to copy the result into the event too (a small one: the coordinator then
--          needs no read of its own); '0' the coordinator reads it from the hash
-- Returns: 'ok' when written; 'stale' when the token is no longer current (nothing written
--          but a 'refused' event, so the late answer is logged, unless the run is gone).
local raw = redis.call('HGET', KEYS[2], ARGV[1])
local entry = nil
if raw then
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and type(decoded) == 'table' then
    entry = decoded
  end
end
if entry == nil or entry['token'] ~= ARGV[2] or entry['state'] ~= 'running' then
  -- no events stream: the run expired or was pruned; a new stream would outlive it
  if redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*',
      'kind', 'refused', 'task', ARGV[1], 'token', ARGV[2], 'status', ARGV[4])
  end
  return 'stale'
end
local kind = 'finished'
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  kind = 'retry'
  entry['state'] = 'retry_wait'
  entry['last_result'] = ARGV[3]
  entry['finished_at'] = tonumber(ARGV[6])
  redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(entry))
end
local fields = { 'kind', kind, 'task', ARGV[1], 'token', ARGV[2], 'status', ARGV[4] }
if ARGV[8] == '1' then
  fields[#fields + 1] = 'result'
  fields[#fields + 1] = ARGV[3]
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', unpack(fields))
return 'ok'
