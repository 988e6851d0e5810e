-- prune_run: delete one finished run, if it is still finished and old enough; the
-- caller then drops the id from the run indexes (other slots). Bounded: a fixed number
-- of keys, each UNLINKed (freed in the background, however large).
-- KEYS[1]  run meta hash
-- KEYS[2..] every other key of the run
-- ARGV[1]  cutoff (unix seconds): the run's finished_at must be at or before it
-- ARGV[2..] the statuses that may be deleted (finished ones: succeeded, failed, ...)
-- Returns: 1 when deleted; 0 when the run changed meanwhile (resumed, finished later:
--          nothing deleted); -1 when its meta is gone already.
local fields = redis.call('HMGET', KEYS[1], 'status', 'finished_at')
local status, finished_at = fields[1], fields[2]
if not status then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    return -1
  end
  return 0
end
local allowed = false
for i = 2, #ARGV do
  if ARGV[i] == status then
    allowed = true
  end
end
local at = tonumber(finished_at or '')
if not allowed or at == nil or at > tonumber(ARGV[1]) then
  return 0
end
redis.call('UNLINK', unpack(KEYS))
return 1
