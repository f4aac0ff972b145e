"""The ``oauth`` linking profile: authorization code flow hardened like FAPI 2.0 (ADR 0009).

A wallet operator links a holder's account in four steps, each module owning one concern:

1. ``pushed`` — the operator pushes the request (RFC 9126) authenticated by ``private_key_jwt``
   (RFC 7523; ``clients``), with PKCE S256 (RFC 7636), the wallet's verified identity (kana
   name, birth date), the requested mandate and its wallet reference; it gets a single-use
   ``request_uri`` living 60 s.
2. ``interaction`` + ``pages`` — the holder's browser follows ``request_uri`` to the bank, logs
   in with internet-banking password **and** TOTP (3 failures lock the login), the bank compares
   the pushed identity with the account holder and refuses a mismatch, and the holder approves
   operator, purpose, account and limits on the consent page (CSRF-protected forms).
3. ``grants`` — the bank redirects with a code (60 s, single use, bound to client, redirect
   URI, PKCE challenge and DPoP key) plus ``state`` and ``iss`` (RFC 9207); the token endpoint
   checks all of it and a DPoP proof (RFC 9449, server nonces, replay cache; ``proofs``), creates
   the link and mandate as the legacy form does, and returns a DPoP-bound access token.
4. ``kouza.bank.dependencies`` accepts ``Authorization: DPoP`` + a fresh proof with
   ``ath`` as the client authentication of that link's debits and credits.

``errors`` renders OAuth error bodies; ``endpoints`` is the HTTP surface.
"""
