"""Local simulator of vendor APIs (RDAP today) with runtime-controlled fault modes."""
