"""Who is calling: principals, the admin key, open mode (project keys arrive with tenancy)."""
