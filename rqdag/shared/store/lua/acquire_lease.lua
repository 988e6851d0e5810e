-- acquire_lease: take (or keep) the lease of a run, with a fencing token, and note its driver.
-- KEYS[1]  lease_key   run lease key (string "owner|fence", with a TTL)
-- KEYS[2]  meta_key    run meta hash (holds the "fence" counter and the "driver" field)
-- ARGV[1]  owner       owner id of the coordinator asking
-- ARGV[2]  ttl_ms      lease TTL in milliseconds
-- ARGV[3]  known       the fence the caller holds already (0: none)
-- ARGV[4]  inbox       the stream the caller's loop reads its runs' news from ('' : none), set
--                      as the run's "inbox" field along with "driver" (the workers' finish
--                      scripts append the run's events key to it)
-- Returns: {fence, noted, previous}: the fence (integer > 0) now held by owner; when it is not
--          `known`, the run's "driver" field is set to owner (noted = 1) and previous is the
--          driver it held before (nil: none), else noted = 0 and previous is nil;
--          {0} when another owner holds the lease; {-1} when the run does not exist.
local lease_key = KEYS[1]
local meta_key = KEYS[2]
local owner = ARGV[1]
local ttl_ms = ARGV[2]
local known = ARGV[3]
local inbox = ARGV[4] or ''

local fence
local current = redis.call('GET', lease_key)
if current then
  local holder, held = string.match(current, '^(.*)|(%d+)$')
  if holder ~= owner then
    return {0}
  end
  redis.call('PEXPIRE', lease_key, ttl_ms)
  fence = tonumber(held)
else
  if redis.call('EXISTS', meta_key) == 0 then
    return {-1}
  end
  fence = redis.call('HINCRBY', meta_key, 'fence', 1)
  redis.call('SET', lease_key, owner .. '|' .. fence, 'PX', ttl_ms)
end
if fence == tonumber(known) then
  return {fence, 0, false}
end
local previous = redis.call('HGET', meta_key, 'driver')
redis.call('HSET', meta_key, 'driver', owner)
if inbox ~= '' then
  redis.call('HSET', meta_key, 'inbox', inbox)
else
  redis.call('HDEL', meta_key, 'inbox')
end
return {fence, 1, previous}
