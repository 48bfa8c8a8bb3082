"""Baseline agents adapted from the papers the GBPM paper compares with."""
