"""The shell around the pure core: load → decide → append in one transaction → effects."""
