-- take_jobs: a concurrent worker takes up to count job ids from the head of its queue into the
-- tail of the queue's intermediate list, as RQ's own dequeue moves one (LMOVE), in one script
-- run instead of count commands. Bounded by count (the worker's free slots).
-- KEYS[1]  queue_key         the RQ queue's list
-- KEYS[2]  intermediate_key  the queue's intermediate list
-- ARGV[1]  count             how many ids to take at most
-- Returns: the ids taken, in the queue's order (fewer than count when the queue ran out).
local queue_key = KEYS[1]
local intermediate_key = KEYS[2]
local count = ARGV[1]

local taken = {}
for _ = 1, tonumber(count) do
  local id = redis.call('LMOVE', queue_key, intermediate_key, 'LEFT', 'RIGHT')
  if not id then
    break
  end
  taken[#taken + 1] = id
end
return taken
