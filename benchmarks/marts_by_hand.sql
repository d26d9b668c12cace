-- The six capacity marts computed by hand in one DuckDB script: the floor the dbt build is
-- compared with (benchmarks/dbt_bench.py). Same definitions as the dbt models (models/docs.md):
-- exact duplicates once, a slot's earliest slotImpression, monetized = a sales type not in the
-- not-monetized seed, capacity = max_slot_duration or the delivered seconds, orphan ads out.
-- {lake} is replaced by the lake folder, {contract_columns} by the log contract's columns.

create or replace temp table slots as
with events as (
    select distinct {contract_columns}, event_date, event_hour
    from read_parquet('{lake}/v4_events/*/*/*.parquet', hive_partitioning = true)
),
first_impressions as (
    select
        transaction_id, slot_id, event_time, site_id, site_section_id, series_id,
        max_slot_duration,
        nullif(upper(trim(time_position_class)), '') as time_position_class,
        cast(event_hour as integer) as event_hour,
        cast(event_date as date) as event_date
    from events
    where lower(trim(event_name)) = 'slotimpression'
    qualify row_number() over (
        partition by transaction_id, slot_id
        order by event_time, max_slot_duration desc nulls last,
            nullif(upper(trim(time_position_class)), '') nulls last, site_id nulls last,
            site_section_id nulls last, series_id nulls last, video_asset_id nulls last,
            network_id nulls last
    ) = 1
),
ads as (
    select
        transaction_id, slot_id, ad_duration,
        case
            when nullif(upper(trim(sales_type)), '') is null then 0
            when upper(trim(sales_type)) in ('HOUSE', 'PROMO', 'FILLER', 'DEFAULT') then 0
            else 1
        end as is_monetized
    from events
    where lower(trim(event_name)) = 'defaultimpression'
),
ads_per_slot as (
    select
        transaction_id, slot_id,
        count(*) as ad_impressions,
        sum(is_monetized) as monetized_impressions,
        coalesce(sum(ad_duration), 0) as delivered_seconds,
        coalesce(sum(case when is_monetized = 1 then ad_duration end), 0) as monetized_ad_seconds
    from ads
    group by all
)
select
    s.event_date, s.event_hour, s.site_id, s.site_section_id, s.series_id,
    case s.time_position_class
        when 'PREROLL' then 'preroll' when 'MIDROLL' then 'midroll'
        when 'PAUSE_MIDROLL' then 'midroll' when 'POSTROLL' then 'postroll'
        when 'OVERLAY' then 'overlay' when 'DISPLAY' then 'display' else 'other'
    end as slot_type,
    coalesce(a.ad_impressions, 0) as ad_impressions,
    coalesce(a.monetized_impressions, 0) as monetized_impressions,
    coalesce(s.max_slot_duration, coalesce(a.delivered_seconds, 0)) as capacity_seconds,
    coalesce(a.delivered_seconds, 0) as delivered_seconds,
    least(coalesce(a.monetized_ad_seconds, 0),
        coalesce(s.max_slot_duration, coalesce(a.delivered_seconds, 0))) as monetized_seconds
from first_impressions as s
left join ads_per_slot as a using (transaction_id, slot_id);

create or replace table hand_capacity_preroll as
select event_date, event_hour, count(*) as slot_impressions, sum(ad_impressions) as ad_impressions,
    sum(monetized_impressions) as monetized_impressions, sum(capacity_seconds) as capacity_seconds,
    sum(delivered_seconds) as delivered_seconds, sum(monetized_seconds) as monetized_seconds,
    sum(capacity_seconds - monetized_seconds) as unsold_seconds,
    sum(monetized_seconds) / nullif(sum(capacity_seconds), 0) as sell_through_rate
from slots where slot_type = 'preroll' group by all;

create or replace table hand_capacity_midroll as
select event_date, event_hour, count(*) as slot_impressions, sum(ad_impressions) as ad_impressions,
    sum(monetized_impressions) as monetized_impressions, sum(capacity_seconds) as capacity_seconds,
    sum(delivered_seconds) as delivered_seconds, sum(monetized_seconds) as monetized_seconds,
    sum(capacity_seconds - monetized_seconds) as unsold_seconds,
    sum(monetized_seconds) / nullif(sum(capacity_seconds), 0) as sell_through_rate
from slots where slot_type = 'midroll' group by all;

create or replace table hand_capacity_overlay as
select event_date, event_hour, count(*) as slot_impressions, sum(ad_impressions) as ad_impressions,
    sum(monetized_impressions) as monetized_impressions, sum(capacity_seconds) as capacity_seconds,
    sum(delivered_seconds) as delivered_seconds, sum(monetized_seconds) as monetized_seconds,
    sum(capacity_seconds - monetized_seconds) as unsold_seconds,
    sum(monetized_seconds) / nullif(sum(capacity_seconds), 0) as sell_through_rate
from slots where slot_type = 'overlay' group by all;

create or replace table hand_capacity_by_site as
select d.event_date, d.slot_type, d.site_id,
    case when d.site_id is null then 'no site'
        when n.site_name is null then 'unknown site ' || cast(d.site_id as varchar)
        else n.site_name end as site_name,
    d.* exclude (event_date, slot_type, site_id)
from (
    select event_date, slot_type, site_id, count(*) as slot_impressions,
        sum(ad_impressions) as ad_impressions, sum(monetized_impressions) as monetized_impressions,
        sum(capacity_seconds) as capacity_seconds, sum(delivered_seconds) as delivered_seconds,
        sum(monetized_seconds) as monetized_seconds,
        sum(capacity_seconds - monetized_seconds) as unsold_seconds,
        sum(monetized_seconds) / nullif(sum(capacity_seconds), 0) as sell_through_rate
    from slots group by all
) as d
left join read_parquet('{lake}/dimensions/sites/sites.parquet') as n using (site_id);

create or replace table hand_capacity_by_site_section as
select d.event_date, d.slot_type, d.site_section_id,
    case when d.site_section_id is null then 'no site section'
        when n.site_section_name is null
            then 'unknown site section ' || cast(d.site_section_id as varchar)
        else n.site_section_name end as site_section_name,
    d.* exclude (event_date, slot_type, site_section_id)
from (
    select event_date, slot_type, site_section_id, count(*) as slot_impressions,
        sum(ad_impressions) as ad_impressions, sum(monetized_impressions) as monetized_impressions,
        sum(capacity_seconds) as capacity_seconds, sum(delivered_seconds) as delivered_seconds,
        sum(monetized_seconds) as monetized_seconds,
        sum(capacity_seconds - monetized_seconds) as unsold_seconds,
        sum(monetized_seconds) / nullif(sum(capacity_seconds), 0) as sell_through_rate
    from slots group by all
) as d
left join read_parquet('{lake}/dimensions/site_sections/site_sections.parquet') as n
    using (site_section_id);

create or replace table hand_capacity_by_series as
select d.event_date, d.slot_type, d.series_id,
    case when d.series_id is null then 'no series'
        when n.series_name is null then 'unknown series ' || cast(d.series_id as varchar)
        else n.series_name end as series_name,
    d.* exclude (event_date, slot_type, series_id)
from (
    select event_date, slot_type, series_id, count(*) as slot_impressions,
        sum(ad_impressions) as ad_impressions, sum(monetized_impressions) as monetized_impressions,
        sum(capacity_seconds) as capacity_seconds, sum(delivered_seconds) as delivered_seconds,
        sum(monetized_seconds) as monetized_seconds,
        sum(capacity_seconds - monetized_seconds) as unsold_seconds,
        sum(monetized_seconds) / nullif(sum(capacity_seconds), 0) as sell_through_rate
    from slots group by all
) as d
left join read_parquet('{lake}/dimensions/series/series.parquet') as n using (series_id);
