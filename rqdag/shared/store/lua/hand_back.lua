-- hand_back: a worker that is shutting down gives a running attempt back, so the
-- coordinator dispatches it again at once (or, for an at-most-once task, marks its
-- outcome unknown) instead of waiting for the heartbeat limit.
-- KEYS[1]  dispatch_key  run dispatch hash
-- KEYS[2]  events_key    run events stream
-- ARGV[1]  task          task name
-- ARGV[2]  token         token of the attempt
-- ARGV[3]  maxlen        approximate maximum length of the events stream
-- Returns: 1 when handed back; 0 when the attempt is no longer the running one.
local dispatch_key = KEYS[1]
local events_key = KEYS[2]
local task = ARGV[1]
local token = ARGV[2]
local maxlen = ARGV[3]

-- Tell the run's driver loop that the run has news: the loop's inbox stream is named in the
-- run's meta (field 'inbox', set with its lease), so it reads only the runs with news. A key
-- not declared (standalone Redis only, as the loop's reads are); its prefix and MAXLEN are
-- keys.INBOX_PREFIX and keys.INBOX_MAXLEN (a test holds them equal).
local function notify_driver(events_key)
  local inbox = redis.call('HGET', string.sub(events_key, 1, -7) .. 'meta', 'inbox')
  if inbox and string.sub(inbox, 1, 18) == 'rqdag:coordinator:' and redis.call('EXISTS', inbox) == 1 then
    redis.call('XADD', inbox, 'MAXLEN', '~', 100000, '*', 'e', events_key)
  end
end

local raw = redis.call('HGET', dispatch_key, task)
if not raw then
  return 0
end
local ok, entry = pcall(cjson.decode, raw)
if not ok or type(entry) ~= 'table' or entry['token'] ~= token or entry['state'] ~= 'running' then
  return 0
end
entry['state'] = 'handed_back'
redis.call('HSET', dispatch_key, task, cjson.encode(entry))
redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, '*',
  'kind', 'handback', 'task', task, 'token', token, 'worker', tostring(entry['worker']))
notify_driver(events_key)
return 1
