"""Byte units the settings' bounds are written in."""

KIB = 1024
MIB = 1024 * 1024
