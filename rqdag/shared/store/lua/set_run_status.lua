-- set_run_status: the coordinator records the run's status, under its lease.
-- KEYS[1]  run lease key
-- KEYS[2]  run meta hash
-- KEYS[3]  run events stream
-- ARGV[1]  lease value "owner|fence" the caller holds
-- ARGV[2]  run status (running, blocked, succeeded, failed, cancelled, error)
-- ARGV[3]  now (unix seconds)
-- ARGV[4]  approximate maximum length of the events stream
-- Returns: 1 when written, -1 when the lease is not held (nothing written).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('HSET', KEYS[2], 'status', ARGV[2], 'updated_at', ARGV[3])
if ARGV[2] == 'succeeded' or ARGV[2] == 'failed' or ARGV[2] == 'cancelled' or ARGV[2] == 'error' then
  redis.call('HSET', KEYS[2], 'finished_at', ARGV[3])
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'kind', 'run', 'status', ARGV[2])
return 1
