-- start_jobs: RQ's start of a batch of jobs a concurrent worker took from one queue (what RQ
-- writes before it runs a job: the execution record, its entry in the started registry and
-- in the worker's executions, the job's started status and heartbeat, the job out of the
-- intermediate list, the worker busy), in one script run instead of a transaction of
-- about ten commands a job. Bounded by the batch (a worker's free slots).
-- KEYS[1]  worker_key             RQ's hash of the worker
-- KEYS[2]  worker_executions_key  RQ's set of the worker's executions
-- KEYS[3]  intermediate_key       the queue's intermediate list
-- KEYS[4]  started_key            the queue's started registry
-- ARGV[1]  worker                 worker name
-- ARGV[2]  now                    unix seconds (the executions' created_at and last_heartbeat)
-- ARGV[3]  now_text               the same time in RQ's text form (the job's and the worker's)
-- ARGV[4]  rq_busy                RQ's word for a busy worker (its WorkerStatus)
-- ARGV[5]  rq_started             RQ's word for a started job (its JobStatus)
-- ARGV[6]  worker_ttl             seconds the worker's keys live (the longest heartbeat TTL)
-- Then per job j (j = 0, 1, ...): CALL_KEYS keys from key 5 + CALL_KEYS * j on, and CALL_ARGS
-- arguments from argument 7 + CALL_ARGS * j on, in this order:
--   keys: job_key, execution_key, job_executions_key
--   args: job_id, execution_id, execution_member (its member in the started registry),
--         ttl (the job's heartbeat TTL, seconds), started_score, executions_score
-- Returns: the number of jobs started. Sent again with the same arguments (its answer was
--          lost), it writes the same values again: nothing is added twice.
local worker_key = KEYS[1]
local worker_executions_key = KEYS[2]
local intermediate_key = KEYS[3]
local started_key = KEYS[4]
local worker = ARGV[1]
local now = ARGV[2]
local now_text = ARGV[3]
local rq_busy = ARGV[4]
local rq_started = ARGV[5]
local worker_ttl = ARGV[6]
local CALL_KEYS = 3
local CALL_ARGS = 6
local keys = KEYS
local args = ARGV

local function start(k, a)
  local job_key, execution_key, job_executions_key = keys[k + 1], keys[k + 2], keys[k + 3]
  local job_id, execution_id, execution_member = args[a + 1], args[a + 2], args[a + 3]
  local ttl, started_score, executions_score = args[a + 4], args[a + 5], args[a + 6]
  redis.call('HSET', execution_key, 'id', execution_id, 'job_id', job_id, 'created_at', now,
    'last_heartbeat', now, 'worker_name', worker)
  redis.call('EXPIRE', execution_key, ttl)
  redis.call('ZADD', job_executions_key, executions_score, execution_id)
  redis.call('EXPIRE', job_executions_key, tonumber(ttl) + 60)
  redis.call('ZADD', started_key, started_score, execution_member)
  redis.call('SADD', worker_executions_key, execution_member)
  redis.call('HSET', job_key, 'last_heartbeat', now_text, 'status', rq_started,
    'started_at', now_text, 'worker_name', worker)
  redis.call('PERSIST', job_key)
  redis.call('LREM', intermediate_key, 1, job_id)
end

local count = (#keys - 4) / CALL_KEYS
for j = 0, count - 1 do
  start(4 + CALL_KEYS * j, 6 + CALL_ARGS * j)
end
redis.call('HSET', worker_key, 'state', rq_busy, 'last_heartbeat', now_text)
redis.call('EXPIRE', worker_key, worker_ttl)
redis.call('EXPIRE', worker_executions_key, worker_ttl)
return count
