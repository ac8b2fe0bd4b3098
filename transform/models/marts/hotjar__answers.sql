{#- One row per answer, with its question, survey and response, and a numeric score for scale questions. -#}

with answers as (
    select * from {{ ref('stg_hotjar__survey_answers') }}
),

responses as (
    select * from {{ ref('stg_hotjar__survey_responses') }}
),

questions as (
    select * from {{ ref('stg_hotjar__survey_questions') }}
),

surveys as (
    select * from {{ ref('stg_hotjar__surveys') }}
),

identities as (
    select response_id, value as identified_user_id
    from {{ ref('hotjar__response_attributes') }}
    where name = {{ identity_attribute() }}
),

joined as (
    select
        answers.response_id,
        answers.position,
        coalesce(answers.site_id, responses.site_id) as site_id,
        coalesce(answers.survey_id, responses.survey_id) as survey_id,
        surveys.survey_name,
        answers.question_id,
        questions.question_text,
        -- The type the tap recorded with the answer; the survey's questions
        -- table only where the answer has none.
        coalesce(answers.question_type, questions.question_type) as question_type,
        questions.question_position,
        answers.answer,
        answers.comment,
        answers.sentiment,
        answers.tags,
        coalesce(responses.created_time, answers.created_time) as created_time,
        responses.device,
        responses.country,
        responses.browser,
        responses.os,
        responses.is_complete,
        responses.hotjar_user_id,
        identities.identified_user_id
    from answers
    left join responses
        on responses.response_id = answers.response_id
    left join questions
        on questions.survey_id = answers.survey_id
        and questions.question_id = answers.question_id
    left join surveys
        on surveys.survey_id = coalesce(answers.survey_id, responses.survey_id)
    left join identities
        on identities.response_id = answers.response_id
)

select
    response_id,
    position,
    site_id,
    survey_id,
    survey_name,
    question_id,
    question_text,
    question_type,
    question_position,
    answer,
    case
        when question_type in ('nps', 'rating-1-5', 'rating-1-7', 'reaction')
        then {{ parse_score('answer') }}
    end as score,
    comment,
    sentiment,
    tags,
    created_time,
    device,
    country,
    browser,
    os,
    is_complete,
    hotjar_user_id,
    identified_user_id
from joined
