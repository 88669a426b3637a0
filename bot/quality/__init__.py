"""Quality: what testers run (evaluation, replays, tuning) and the signed webhook client they use."""
