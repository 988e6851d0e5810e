-- heartbeat: a worker proves a running attempt is alive, and learns of a cancel.
-- KEYS[1]  dispatch_key  run dispatch hash
-- KEYS[2]  meta_key      run meta hash
-- ARGV[1]  task          task name
-- ARGV[2]  token         token of the attempt
-- ARGV[3]  worker_time   the worker's clock (unix seconds; informational: heartbeat_at is
--                        Redis TIME, so hosts with skewed clocks agree on what is stale)
-- Returns: {'ok', cancel_reason_or_empty} when recorded; {'stale'} when the attempt
--          is no longer current (the worker should stop it).
local dispatch_key = KEYS[1]
local meta_key = KEYS[2]
local task = ARGV[1]
local token = ARGV[2]
local worker_time = ARGV[3]  -- unused: see above

local raw = redis.call('HGET', dispatch_key, task)
if not raw then
  return {'stale'}
end
local ok, entry = pcall(cjson.decode, raw)
if not ok or type(entry) ~= 'table' or entry['token'] ~= token or entry['state'] ~= 'running' then
  return {'stale'}
end
local now = redis.call('TIME')
entry['heartbeat_at'] = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('HSET', dispatch_key, task, cjson.encode(entry))
return {'ok', redis.call('HGET', meta_key, 'cancel') or ''}
