-- renew_lease: extend the lease if the caller still holds exactly this fence.
-- KEYS[1]  run lease key
-- ARGV[1]  lease value "owner|fence" the caller believes it holds
-- ARGV[2]  lease TTL in milliseconds
-- Returns: 1 when renewed, 0 when the lease is lost.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
