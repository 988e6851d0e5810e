-- renew_leases: renew_lease for a batch of runs in one script run: each lease is extended if
-- the caller still holds exactly its value. Bounded by the batch (the caller's chunk of
-- leases), never by the size of a run.
-- ARGV[1]  ttl_ms  lease TTL in milliseconds
-- Then per lease i (i = 1, 2, ...): its run's lease key is key i, and the value "owner|fence"
-- the caller believes it holds is argument 1 + i.
-- Returns: one number per lease, in order: 1 when renewed, 0 when the lease is lost.
local ttl_ms = ARGV[1]
local keys = KEYS
local args = ARGV

local renewed = {}
for i = 1, #keys do
  if redis.call('GET', keys[i]) == args[i + 1] then
    redis.call('PEXPIRE', keys[i], ttl_ms)
    renewed[i] = 1
  else
    renewed[i] = 0
  end
end
return renewed
