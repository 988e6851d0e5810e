-- read_progress: what a coordinator taking over a run needs, in one atomic step, without
-- copying the data of every success (a run of 100,000 tasks loads in a fraction of a second).
-- KEYS[1]  results_key   run results hash
-- KEYS[2]  dispatch_key  run dispatch hash
-- KEYS[3]  events_key    run events stream
-- Returns: { id of the newest event ('' when none),
--            names of the plain successes (a value as rqdag writes it: status first, not in doubt),
--            name, value, name, value, ... of every other result (decoded and checked by the caller),
--            name, value, ... of the dispatch hash }
local results_key = KEYS[1]
local dispatch_key = KEYS[2]
local events_key = KEYS[3]

local newest = redis.call('XREVRANGE', events_key, '+', '-', 'COUNT', 1)
local newest_id = ''
if newest[1] then
  newest_id = newest[1][1]
end
local results = redis.call('HGETALL', results_key)
local successes = {}
local others = {}
local prefix = '{"status":"success"'
for i = 1, #results, 2 do
  local value = results[i + 1]
  if string.sub(value, 1, #prefix) == prefix and not string.find(value, '"in_doubt"', #prefix, true) then
    successes[#successes + 1] = results[i]
  else
    others[#others + 1] = results[i]
    others[#others + 1] = value
  end
end
return { newest_id, successes, others, redis.call('HGETALL', dispatch_key) }
