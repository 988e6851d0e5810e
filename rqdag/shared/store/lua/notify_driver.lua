-- notify_driver: tell the driver loop of a run that an operator wrote news to its events
-- stream (a resolution, a signal, a cancel request, a child run's end), as the workers'
-- finish scripts do in their own step.
-- KEYS[1]  events_key  run events stream (the run's meta key is named after it)
-- Returns: 0
local events_key = KEYS[1]

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

notify_driver(events_key)
return 0
