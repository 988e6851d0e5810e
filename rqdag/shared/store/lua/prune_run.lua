-- prune_run: delete one finished run, if it is still finished and old enough; the
-- caller then drops the id from the run indexes (other slots). Bounded: a fixed number
-- of keys, each UNLINKed (freed in the background, however large).
-- KEYS[1]  meta_key        run meta hash
-- KEYS[2]  definition_key  run definition
-- KEYS[3]  results_key     run results hash
-- KEYS[4]  dispatch_key    run dispatch hash
-- KEYS[5]  events_key      run events stream
-- KEYS[6]  lease_key       run lease key
-- KEYS[7]  audit_key       run audit stream
-- KEYS[8]  logs_key        run logs stream (what its tasks wrote)
-- KEYS[9]  signals_key     run signals hash
-- KEYS[10] timers_key      run timers hash
-- ARGV[1]  cutoff          unix seconds: the run's finished_at must be at or before it
-- ARGV[2..] the statuses that may be deleted (finished ones: succeeded, failed, ...)
-- Returns: 1 when deleted; 0 when the run changed meanwhile (resumed, finished later:
--          nothing deleted); -1 when its meta is gone already.
local meta_key = KEYS[1]
local definition_key = KEYS[2]
local results_key = KEYS[3]
local dispatch_key = KEYS[4]
local events_key = KEYS[5]
local lease_key = KEYS[6]
local audit_key = KEYS[7]
local logs_key = KEYS[8]
local signals_key = KEYS[9]
local timers_key = KEYS[10]
local cutoff = ARGV[1]
local first_status = 2

local fields = redis.call('HMGET', meta_key, 'status', 'finished_at')
local status, finished_at = fields[1], fields[2]
if not status then
  if redis.call('EXISTS', meta_key) == 0 then
    return -1
  end
  return 0
end
local allowed = false
for i = first_status, #ARGV do
  if ARGV[i] == status then
    allowed = true
  end
end
local at = tonumber(finished_at or '')
if not allowed or at == nil or at > tonumber(cutoff) then
  return 0
end
redis.call('UNLINK', meta_key, definition_key, results_key, dispatch_key, events_key, lease_key, audit_key,
  logs_key, signals_key, timers_key)
return 1
