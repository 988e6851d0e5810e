-- record_results: the coordinator writes results it decided itself (skips, cancels,
-- lost attempts), under its lease; a success already recorded is never overwritten.
-- KEYS[1]  run lease key
-- KEYS[2]  run results hash
-- KEYS[3]  run dispatch hash
-- KEYS[4]  run events stream
-- ARGV[1]  lease value "owner|fence" the caller holds
-- ARGV[2]  approximate maximum length of the events stream
-- ARGV[3..] triples: task name, TaskResult JSON, status
-- Returns: the number of results written, or -1 when the lease is not held (nothing written).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local written = 0
for i = 3, #ARGV, 3 do
  local task = ARGV[i]
  local keep = false
  local existing = redis.call('HGET', KEYS[2], task)
  if existing then
    local ok, decoded = pcall(cjson.decode, existing)
    keep = ok and type(decoded) == 'table' and decoded['status'] == 'success'
  end
  if not keep then
    redis.call('HSET', KEYS[2], task, ARGV[i + 1])
    redis.call('HDEL', KEYS[3], task)
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*',
      'kind', 'decided', 'task', task, 'status', ARGV[i + 2])
    written = written + 1
  end
end
return written
