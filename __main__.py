"""Pulumi entry point: `pulumi up --stack dev|prod` runs this."""

from stacks.program import program

program()
