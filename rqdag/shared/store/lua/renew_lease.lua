-- renew_lease: extend the lease if the caller still holds exactly this fence.
-- KEYS[1]  lease_key   run lease key
-- ARGV[1]  lease       lease value "owner|fence" the caller believes it holds
-- ARGV[2]  ttl_ms      lease TTL in milliseconds
-- Returns: 1 when renewed, 0 when the lease is lost.
local lease_key = KEYS[1]
local lease = ARGV[1]
local ttl_ms = ARGV[2]

if redis.call('GET', lease_key) == lease then
  redis.call('PEXPIRE', lease_key, ttl_ms)
  return 1
end
return 0
