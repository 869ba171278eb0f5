"""Stack configuration, environment profiles, composition, and the offline plan/diff/check tooling."""
