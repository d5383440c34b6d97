"""Local simulator of vendor APIs (RDAP, Cloudflare, GoDaddy, Namecheap, MailChannels) with runtime faults."""
