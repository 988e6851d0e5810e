-- acquire_lease: take (or keep) the lease of a run, with a fencing token.
-- KEYS[1]  lease_key   run lease key (string "owner|fence", with a TTL)
-- KEYS[2]  meta_key    run meta hash (holds the "fence" counter)
-- ARGV[1]  owner       owner id of the coordinator asking
-- ARGV[2]  ttl_ms      lease TTL in milliseconds
-- Returns: the fence (integer > 0) now held by owner;
--          0 when another owner holds the lease; -1 when the run does not exist.
local lease_key = KEYS[1]
local meta_key = KEYS[2]
local owner = ARGV[1]
local ttl_ms = ARGV[2]

local current = redis.call('GET', lease_key)
if current then
  local holder, fence = string.match(current, '^(.*)|(%d+)$')
  if holder ~= owner then
    return 0
  end
  redis.call('PEXPIRE', lease_key, ttl_ms)
  return tonumber(fence)
end
if redis.call('EXISTS', meta_key) == 0 then
  return -1
end
local fence = redis.call('HINCRBY', meta_key, 'fence', 1)
redis.call('SET', lease_key, owner .. '|' .. fence, 'PX', ttl_ms)
return fence
