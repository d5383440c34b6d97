"""Run this service's migrations (skeleton: nothing to do yet)."""

if __name__ == "__main__":
    pass
