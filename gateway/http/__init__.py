"""HTTP plumbing shared by the stages: safe paths, header filtering, bounded bodies."""
