-- dispatch_jobs: the coordinator's dispatch step, under its lease, all or nothing: the
-- attempts' dispatch entries and each attempt's RQ job as RQ's enqueue writes it (the
-- job's hash, its id at the back of its queue, the queue in RQ's set of queues).
-- The caller sends at most a bounded batch of attempts per call (never a whole run).
-- KEYS[1]  lease_key     run lease key
-- KEYS[2]  dispatch_key  run dispatch hash
-- KEYS[3..] RQ's set of queues, then per job in ARGV's order: its hash key, its queue key
-- ARGV[1]  lease         lease value "owner|fence" the caller holds
-- ARGV[2]  entry_count   how many task name, entry JSON pairs follow
-- ARGV[3..] the entry pairs, then per job: its RQ job id, its field count n, n field, value pairs
-- Returns: the number of jobs written, or -1 when the lease is not held (nothing written).
local lease_key = KEYS[1]
local dispatch_key = KEYS[2]
local lease = ARGV[1]
local entry_count = ARGV[2]
local first_variadic_key = 3
local queues_key = KEYS[first_variadic_key]
local first_job_key = first_variadic_key + 1
local first_entry = 3

if redis.call('GET', lease_key) ~= lease then
  return -1
end
local at = first_entry
for _ = 1, tonumber(entry_count) do
  redis.call('HSET', dispatch_key, ARGV[at], ARGV[at + 1])
  at = at + 2
end
local jobs = 0
for k = first_job_key, #KEYS, 2 do
  local job_key = KEYS[k]
  local queue_key = KEYS[k + 1]
  local id = ARGV[at]
  local fields = tonumber(ARGV[at + 1])
  redis.call('HSET', job_key, unpack(ARGV, at + 2, at + 1 + 2 * fields))
  at = at + 2 + 2 * fields
  redis.call('SADD', queues_key, queue_key)
  redis.call('RPUSH', queue_key, id)
  jobs = jobs + 1
end
return jobs
