"""Everything that touches Redis: keys, the Lua scripts and their wrappers, the run store."""
