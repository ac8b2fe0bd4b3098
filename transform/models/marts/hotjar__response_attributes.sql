{#- One row per response and user attribute (Hotjar's Identify API), value as text. -#}
with responses as (
    select response_id, site_id, survey_id, hotjar_user_id, created_time, user_attributes
    from {{ ref('stg_hotjar__survey_responses') }}
),

elements as (
    {{ json_array_elements('responses', 'user_attributes',
        ['response_id', 'site_id', 'survey_id', 'hotjar_user_id', 'created_time']) }}
),

attributes as (
    select
        response_id,
        site_id,
        survey_id,
        hotjar_user_id,
        created_time,
        cast(element ->> 'name' as text) as name,
        cast(element ->> 'value' as text) as value,
        element -> 'value' as value_json,
        -- Identify sets attributes as a map, so a name occurs once per response;
        -- should a list repeat one, its last occurrence wins, as in a map.
        row_number() over (
            partition by response_id, element ->> 'name'
            order by element_index desc
        ) as occurrence
    from elements
    where element ->> 'name' is not null
)

select
    response_id,
    name,
    value,
    value_json,
    site_id,
    survey_id,
    hotjar_user_id,
    created_time
from attributes
where occurrence = 1
