-- The databases of Clair's matcher and notifier (compose.yaml's "clair"
-- profile), as Clair's own local-dev setup makes them. Run once by the
-- postgres image, as the superuser "clair", when its volume is new.
CREATE DATABASE matcher WITH OWNER clair;
CREATE DATABASE notifier WITH OWNER clair;
\connect matcher
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
\connect notifier
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
