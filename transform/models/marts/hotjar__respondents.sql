{#-
    One row per identified user: the value of the attribute named by the var
    hotjar_identity_attribute (default user_id), which Hotjar's Identify API sets
    (from your app, or from Amplitude's Hotjar plugin). Join it to a product
    analytics users table on identified_user_id.
-#}

with attributes as (
    select * from {{ ref('hotjar__response_attributes') }}
),

identified_responses as (
    -- response_attributes holds one row per response and name: one per response here.
    select
        value as identified_user_id,
        response_id,
        survey_id,
        hotjar_user_id,
        created_time
    from attributes
    where name = {{ identity_attribute() }}
        and value is not null
        and value <> ''
),

summary as (
    select
        identified_user_id,
        min(created_time) as first_response_time,
        max(created_time) as last_response_time,
        count(*) as responses,
        count(distinct survey_id) as surveys_answered,
        count(distinct hotjar_user_id) as hotjar_user_count
    from identified_responses
    group by identified_user_id
),

hotjar_users as (
    select
        identified_user_id,
        {{ json_array_agg('hotjar_user_id', 'hotjar_user_id') }} as hotjar_user_ids
    from (
        select distinct identified_user_id, hotjar_user_id
        from identified_responses
        where hotjar_user_id is not null
    ) as distinct_users
    group by identified_user_id
),

attribute_history as (
    select
        identified_responses.identified_user_id,
        attributes.name,
        attributes.value_json,
        row_number() over (
            partition by identified_responses.identified_user_id, attributes.name
            order by attributes.created_time desc, attributes.response_id desc
        ) as recency
    from identified_responses
    inner join attributes
        on attributes.response_id = identified_responses.response_id
),

latest_attributes as (
    select
        identified_user_id,
        {{ json_object_agg('name', 'value_json') }} as attributes
    from attribute_history
    where recency = 1
    group by identified_user_id
)

select
    summary.identified_user_id,
    coalesce(hotjar_users.hotjar_user_ids, cast('[]' as {{ json_type() }})) as hotjar_user_ids,
    summary.hotjar_user_count,
    summary.first_response_time,
    summary.last_response_time,
    summary.responses,
    summary.surveys_answered,
    latest_attributes.attributes
from summary
left join hotjar_users
    on hotjar_users.identified_user_id = summary.identified_user_id
left join latest_attributes
    on latest_attributes.identified_user_id = summary.identified_user_id
