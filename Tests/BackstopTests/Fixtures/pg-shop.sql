--
-- PostgreSQL database dump
--

\restrict EluCZZ4PzYNd1KtY0oFHdWGGR7aKIqVvlsB8uH4gNT0wSS9m5oVjvgleZ7rAZiI

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: audit; Type: SCHEMA; Schema: -; Owner: postgres
--

CREATE SCHEMA audit;


ALTER SCHEMA audit OWNER TO postgres;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: log; Type: TABLE; Schema: audit; Owner: postgres
--

CREATE TABLE audit.log (
    at timestamp with time zone,
    what text
);


ALTER TABLE audit.log OWNER TO postgres;

--
-- Name: customers; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.customers (
    id integer NOT NULL,
    name text
);


ALTER TABLE public.customers OWNER TO postgres;

--
-- Name: customers_id_seq; Type: SEQUENCE; Schema: public; Owner: postgres
--

CREATE SEQUENCE public.customers_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


ALTER TABLE public.customers_id_seq OWNER TO postgres;

--
-- Name: customers_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: postgres
--

ALTER SEQUENCE public.customers_id_seq OWNED BY public.customers.id;


--
-- Name: orders; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.orders (
    id integer NOT NULL,
    customer integer,
    total numeric
);


ALTER TABLE public.orders OWNER TO postgres;

--
-- Name: orders_id_seq; Type: SEQUENCE; Schema: public; Owner: postgres
--

CREATE SEQUENCE public.orders_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


ALTER TABLE public.orders_id_seq OWNER TO postgres;

--
-- Name: orders_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: postgres
--

ALTER SEQUENCE public.orders_id_seq OWNED BY public.orders.id;


--
-- Name: customers id; Type: DEFAULT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.customers ALTER COLUMN id SET DEFAULT nextval('public.customers_id_seq'::regclass);


--
-- Name: orders id; Type: DEFAULT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.orders ALTER COLUMN id SET DEFAULT nextval('public.orders_id_seq'::regclass);


--
-- Data for Name: log; Type: TABLE DATA; Schema: audit; Owner: postgres
--

COPY audit.log (at, what) FROM stdin;
2024-03-24 22:00:00+00	upgrade
\.


--
-- Data for Name: customers; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.customers (id, name) FROM stdin;
1	customer 1
2	customer 2
3	customer 3
4	customer 4
5	customer 5
6	customer 6
7	customer 7
8	customer 8
9	customer 9
10	customer 10
11	customer 11
12	customer 12
13	customer 13
14	customer 14
15	customer 15
16	customer 16
17	customer 17
18	customer 18
19	customer 19
20	customer 20
21	customer 21
22	customer 22
23	customer 23
24	customer 24
25	customer 25
26	customer 26
27	customer 27
28	customer 28
29	customer 29
30	customer 30
31	customer 31
32	customer 32
33	customer 33
34	customer 34
35	customer 35
36	customer 36
37	customer 37
38	customer 38
39	customer 39
40	customer 40
41	customer 41
42	customer 42
43	customer 43
44	customer 44
45	customer 45
46	customer 46
47	customer 47
48	customer 48
49	customer 49
50	customer 50
\.


--
-- Data for Name: orders; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.orders (id, customer, total) FROM stdin;
1	2	1.25
2	3	2.50
3	4	3.75
4	5	5.00
5	6	6.25
6	7	7.50
7	8	8.75
8	9	10.00
9	10	11.25
10	11	12.50
11	12	13.75
12	13	15.00
13	14	16.25
14	15	17.50
15	16	18.75
16	17	20.00
17	18	21.25
18	19	22.50
19	20	23.75
20	21	25.00
21	22	26.25
22	23	27.50
23	24	28.75
24	25	30.00
25	26	31.25
26	27	32.50
27	28	33.75
28	29	35.00
29	30	36.25
30	31	37.50
31	32	38.75
32	33	40.00
33	34	41.25
34	35	42.50
35	36	43.75
36	37	45.00
37	38	46.25
38	39	47.50
39	40	48.75
40	41	50.00
41	42	51.25
42	43	52.50
43	44	53.75
44	45	55.00
45	46	56.25
46	47	57.50
47	48	58.75
48	49	60.00
49	50	61.25
50	1	62.50
51	2	63.75
52	3	65.00
53	4	66.25
54	5	67.50
55	6	68.75
56	7	70.00
57	8	71.25
58	9	72.50
59	10	73.75
60	11	75.00
61	12	76.25
62	13	77.50
63	14	78.75
64	15	80.00
65	16	81.25
66	17	82.50
67	18	83.75
68	19	85.00
69	20	86.25
70	21	87.50
\.


--
-- Name: customers_id_seq; Type: SEQUENCE SET; Schema: public; Owner: postgres
--

SELECT pg_catalog.setval('public.customers_id_seq', 50, true);


--
-- Name: orders_id_seq; Type: SEQUENCE SET; Schema: public; Owner: postgres
--

SELECT pg_catalog.setval('public.orders_id_seq', 70, true);


--
-- Name: customers customers_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (id);


--
-- Name: orders orders_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);


--
-- Name: orders orders_customer_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_customer_fkey FOREIGN KEY (customer) REFERENCES public.customers(id);


--
-- PostgreSQL database dump complete
--

\unrestrict EluCZZ4PzYNd1KtY0oFHdWGGR7aKIqVvlsB8uH4gNT0wSS9m5oVjvgleZ7rAZiI

