-- acquire_lease: take (or keep) the lease of a run, with a fencing token.
-- KEYS[1]  run lease key (string "owner|fence", with a TTL)
-- KEYS[2]  run meta hash (holds the "fence" counter)
-- ARGV[1]  owner id of the coordinator asking
-- ARGV[2]  lease TTL in milliseconds
-- Returns: the fence (integer > 0) now held by ARGV[1];
--          0 when another owner holds the lease; -1 when the run does not exist.
local current = redis.call('GET', KEYS[1])
if current then
  local owner, fence = string.match(current, '^(.*)|(%d+)$')
  if owner ~= ARGV[1] then
    return 0
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(fence)
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  return -1
end
local fence = redis.call('HINCRBY', KEYS[2], 'fence', 1)
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. fence, 'PX', ARGV[2])
return fence
