"""Test support that ships with the package: the offline Binance emulator and a stepping clock."""
