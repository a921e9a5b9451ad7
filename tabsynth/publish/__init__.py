"""Policy, gate, report and manifest: what decides and documents a release."""
