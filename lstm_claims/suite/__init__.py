"""The claim suite: thin pytest templates generated from the claim records (lstm_claims.claims)."""
