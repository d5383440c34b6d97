"""Refresh jobs and the scheduler tick."""
