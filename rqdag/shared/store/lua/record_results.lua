-- record_results: the coordinator writes results it decided itself (skips, cancels,
-- lost attempts), under its lease; a success already recorded is never overwritten.
-- KEYS[1]  lease_key     run lease key
-- KEYS[2]  results_key   run results hash
-- KEYS[3]  dispatch_key  run dispatch hash
-- KEYS[4]  events_key    run events stream
-- ARGV[1]  lease         lease value "owner|fence" the caller holds
-- ARGV[2]  maxlen        approximate maximum length of the events stream
-- ARGV[3..] triples: task name, TaskResult JSON, status
-- Returns: the number of results written, or -1 when the lease is not held (nothing written).
local lease_key = KEYS[1]
local results_key = KEYS[2]
local dispatch_key = KEYS[3]
local events_key = KEYS[4]
local lease = ARGV[1]
local maxlen = ARGV[2]
local first_triple = 3

if redis.call('GET', lease_key) ~= lease then
  return -1
end
local written = 0
for i = first_triple, #ARGV, 3 do
  local task = ARGV[i]
  local result = ARGV[i + 1]
  local status = ARGV[i + 2]
  local keep = false
  local existing = redis.call('HGET', results_key, task)
  if existing then
    local ok, decoded = pcall(cjson.decode, existing)
    keep = ok and type(decoded) == 'table' and decoded['status'] == 'success'
  end
  if not keep then
    redis.call('HSET', results_key, task, result)
    redis.call('HDEL', dispatch_key, task)
    redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, '*',
      'kind', 'decided', 'task', task, 'status', status)
    written = written + 1
  end
end
return written
