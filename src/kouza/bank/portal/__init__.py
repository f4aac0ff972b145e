"""The holder portal: the bank's own pages where an account holder signs in with internet
banking (password + one-time password) and sees which services are linked to their account,
revokes or suspends them, reads the notices the bank sent and answers "not me", and sees the
debits and credits by operator (ADR 0040).

* :mod:`.sessions` — server-side sessions (random cookie, HMAC stored, idle and absolute
  expiry, sign-out);
* :mod:`.service` — what the pages show and do, through the bank's services
  (:data:`kouza.bank.holder.holder`);
* :mod:`.endpoints` — the routes, outside the OpenAPI schema: ``/banks/{code}/portal/…`` for
  signed-in holders and ``/banks/{code}/notice`` for a notice opened without signing in.
"""
