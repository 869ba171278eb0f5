"""CrossGuard policy pack of the AML platform; the rules themselves live in policy.rules (pure Python)."""
