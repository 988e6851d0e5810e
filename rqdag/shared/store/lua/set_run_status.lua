-- set_run_status: the coordinator records the run's status, under its lease.
-- KEYS[1]  lease_key   run lease key
-- KEYS[2]  meta_key    run meta hash
-- KEYS[3]  events_key  run events stream
-- ARGV[1]  lease       lease value "owner|fence" the caller holds
-- ARGV[2]  status      run status (running, blocked, succeeded, failed, cancelled, error)
-- ARGV[3]  now         now (unix seconds)
-- ARGV[4]  maxlen      approximate maximum length of the events stream
-- Returns: 1 when written, -1 when the lease is not held (nothing written).
local lease_key = KEYS[1]
local meta_key = KEYS[2]
local events_key = KEYS[3]
local lease = ARGV[1]
local status = ARGV[2]
local now = ARGV[3]
local maxlen = ARGV[4]

if redis.call('GET', lease_key) ~= lease then
  return -1
end
redis.call('HSET', meta_key, 'status', status, 'updated_at', now)
if status == 'succeeded' or status == 'failed' or status == 'cancelled' or status == 'error' then
  redis.call('HSET', meta_key, 'finished_at', now)
end
redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, '*', 'kind', 'run', 'status', status)
return 1
